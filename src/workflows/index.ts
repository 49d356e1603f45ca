// Every workflow the worker registers. Workflow code is bundled and sandboxed: import only
// deterministic code here (no store clients, no node built-ins).
export { platformPreflight } from './platform-preflight';
export { backupOrganization, backupProgressQuery } from './backup-organization';
export { backupPlatform } from './backup-platform';
export { pruneBackups } from './prune-backups';
