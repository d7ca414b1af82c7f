#!/usr/bin/env node
// The `moonlink` command (cli/main.ts), runnable from a checkout: `npx moonlink …` after `npm install`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
