/** The errno values libbpf's CO-RE code returns (negated there), kept so results match its logs. */
export const EINVAL = 22;
export const E2BIG = 7;
export const ERANGE = 34;
export const EOPNOTSUPP = 95;
export const ENOMEM = 12;

export const ERRNO_NAMES: Record<number, string> = {
  [EINVAL]: 'EINVAL',
  [E2BIG]: 'E2BIG',
  [ERANGE]: 'ERANGE',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [ENOMEM]: 'ENOMEM',
};

/**
 * Thrown inside the CO-RE calculation where libbpf returns a negative errno; caught at the top of
 * one relocation's calculation and turned into an `error` result. Never escapes the core.
 */
export class CoreFailure extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = 'CoreFailure';
  }
}
