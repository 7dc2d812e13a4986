/**
 * Errors the public API throws or reports, with stable codes (like Node core
 * and undici) that callers can branch on; README.md (Library, Errors) lists
 * them. A message may change between releases, a code may not.
 */
export type UsernetErrorCode =
  /** An option, argument or address that the API cannot take (createStack, addressPlan, ApiServer, addForward). */
  | 'ERR_USERNET_INVALID_OPTION'
  /** Egress policy text with errors; the error's `errors` lists each line's. */
  | 'ERR_USERNET_INVALID_POLICY'
  /** The stack or socket was closed before the call. */
  | 'ERR_USERNET_CLOSED'
  /** addForward: the same (proto, hostAddr, hostPort) is already forwarded. */
  | 'ERR_USERNET_FORWARD_EXISTS'
  /** removeForward: no such forward. */
  | 'ERR_USERNET_FORWARD_NOT_FOUND'
  /** An IPv6 guest address while the stack runs without IPv6. */
  | 'ERR_USERNET_IPV6_DISABLED'
  /** The native addon was not built (or failed to load). */
  | 'ERR_USERNET_NATIVE_MISSING'
  /** TapLink.attach: the attach child reported a failure (exit status in `exitStatus`). */
  | 'ERR_USERNET_CHILD_FAILED'
  /** TapLink.attach: the parent's side of the attach failed (fork, socketpair, receiving the fd). */
  | 'ERR_USERNET_PARENT_FAILED'
  /** TapLink.fromFd: an ioctl or fcntl on the given fd failed (`errno`). */
  | 'ERR_USERNET_TAP'
  /** Reading or writing the TAP failed (`errno`, `syscall`); reported to the link's error handler. */
  | 'ERR_USERNET_TAP_IO'
  /** A host UDP socket failed (`errno`, `syscall`); reported, the mapping closes. */
  | 'ERR_USERNET_UDP_IO'
  /** A host ping socket failed (`errno`, `syscall`); reported, the socket closes. */
  | 'ERR_USERNET_PING_IO';

export class UsernetError extends Error {
  readonly code: UsernetErrorCode;

  constructor(code: UsernetErrorCode, message: string) {
    super(message);
    this.name = 'UsernetError';
    this.code = code;
  }
}
