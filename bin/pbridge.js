#!/usr/bin/env node
// The CLI and user task files are TypeScript; tsx compiles them on the fly so `npx pbridge` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
