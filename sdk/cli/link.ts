import type { Command } from 'commander';

/** Registers `edgewarden link`. (Not yet implemented.) */
export function registerLink(_program: Command): void {}
