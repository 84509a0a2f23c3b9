/** The facts config loading starts from, built one way for every command and both stages. */
import type { ConfigInputs } from './load.js';

export interface ConfigFacts {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  homeDir: string;
  userName: string;
  hostName: string;
}

/** --config and --profile, when given. */
export interface ConfigFlags {
  config?: string | undefined;
  profile?: string | undefined;
}

export function configInputs(facts: ConfigFacts, flags: ConfigFlags): ConfigInputs {
  return {
    env: facts.env,
    platform: facts.platform,
    homeDir: facts.homeDir,
    userName: facts.userName,
    hostName: facts.hostName,
    ...(flags.config !== undefined ? { configFlag: flags.config } : {}),
    ...(flags.profile !== undefined ? { profileFlag: flags.profile } : {}),
  };
}
