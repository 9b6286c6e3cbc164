// Worker threads start as plain Node: register the TypeScript loader, then run the worker proper.
import { register } from 'tsx/esm/api';

register();
await import('./update-worker.ts');
