import type { Command } from 'commander';

/** Registers `edgewarden bench`. (Not yet implemented.) */
export function registerBench(_program: Command): void {}
