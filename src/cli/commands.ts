/**
 * Every command yargs knows, by name, in the order `--help` lists them. Each module exports
 * `register(y, ctx)`; they load only when yargs does (src/main.ts runs the token path without
 * either). A new command is one line here; main.ts's "did you mean" takes the names from here.
 */
import type { Argv } from 'yargs';
import type { AppContext } from '../context.js';

export interface CommandModule {
  register(y: Argv, ctx: AppContext): Argv;
}

export const COMMANDS: Readonly<Record<string, () => Promise<CommandModule>>> = {
  token: () => import('./token.js'),
  status: () => import('./status.js'),
  doctor: () => import('./doctor.js'),
  cache: () => import('./cache.js'),
  jwks: () => import('./jwks.js'),
  keygen: () => import('./keygen.js'),
  keychain: () => import('./keychain.js'),
  init: () => import('./init.js'),
  config: () => import('./config.js'),
  login: () => import('./login.js'),
  logout: () => import('./logout.js'),
  explain: () => import('./explain.js'),
};
