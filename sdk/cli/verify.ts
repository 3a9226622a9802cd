import type { Command } from 'commander';

/** Registers `edgewarden verify`. (Not yet implemented.) */
export function registerVerify(_program: Command): void {}
