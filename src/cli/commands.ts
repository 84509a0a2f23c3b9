/**
 * Every command yargs knows, in the order `--help` lists them. Each module exports
 * `register(y, ctx)`; they load only when yargs does (src/main.ts runs the token path without
 * either). A new command is one line here.
 */
import type { Argv } from 'yargs';
import type { AppContext } from '../context.js';

export interface CommandModule {
  register(y: Argv, ctx: AppContext): Argv;
}

export const COMMANDS: (() => Promise<CommandModule>)[] = [
  () => import('./token.js'),
  () => import('./status.js'),
  () => import('./doctor.js'),
  () => import('./cache.js'),
  () => import('./jwks.js'),
  () => import('./keygen.js'),
  () => import('./keychain.js'),
  () => import('./init.js'),
  () => import('./config.js'),
  () => import('./login.js'),
  () => import('./logout.js'),
  () => import('./explain.js'),
];
