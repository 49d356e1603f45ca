// Workflow entry point for test/kubernetes.test.ts until src/workflows/index.ts exports these.
export { backupKubernetes } from '../../src/workflows/backup-kubernetes';
export { rollbackDeployment } from '../../src/workflows/rollback-deployment';
export { rollbackPlatform } from '../../src/workflows/rollback-platform';
