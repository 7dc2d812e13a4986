/** Errors the public API throws for misuse, with stable codes (like Node core and undici). */
export type UsernetErrorCode = 'ERR_USERNET_INVALID_OPTION' | 'ERR_USERNET_CHILD_FAILED' | 'ERR_USERNET_CLOSED' | 'ERR_USERNET_INVALID_POLICY';

export class UsernetError extends Error {
  readonly code: UsernetErrorCode;

  constructor(code: UsernetErrorCode, message: string) {
    super(message);
    this.name = 'UsernetError';
    this.code = code;
  }
}
