import type { Argv } from 'yargs';
import type { AppContext } from '../context.js';
import { internalError } from '../errors.js';

// Placeholder until the owning issue lands; registered so --help lists the command.
export function register(y: Argv, _ctx: AppContext): Argv {
  return y.command('doctor', 'doctor (not built yet)', {}, () => {
    throw internalError('ERR_NOT_BUILT', 'doctor: not built yet');
  });
}
