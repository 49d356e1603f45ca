import { KubeConfig } from '@kubernetes/client-node';
test('loads', () => { expect(typeof KubeConfig).toBe('function'); });
