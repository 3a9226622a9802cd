import type { Command } from 'commander';

/** Registers `edgewarden policy`. (Not yet implemented.) */
export function registerPolicy(_program: Command): void {}
