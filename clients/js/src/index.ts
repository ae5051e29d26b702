export {
  SekishoClient,
  createClient,
  isStaleCsrf,
  DEFAULT_PATHS,
  type Attempt,
  type ClientOptions,
  type Events,
  type LogoutEvent,
  type LogoutReason,
  type Mode,
  type Paths,
  type Status,
  type User,
} from './client.js';
export {
  SekishoError,
  ApiError,
  SessionExpiredError,
  NetworkError,
  MfaRequiredError,
  type ErrorCode,
  type MfaChallenge,
  type MfaMethod,
} from './errors.js';
export {
  MfaApi,
  isMfaAnswer,
  svgDataUrl,
  type LoginResult,
  type MfaFactor,
  type MfaStatus,
  type TotpEnrolment,
} from './mfa.js';
export { decodePayload, tokenTimes, estimateSkew, type TokenTimes } from './jwt.js';
export {
  memoryStorage,
  memoryGeneration,
  type TokenStorage,
  type Platform,
  type TabChannel,
  type TabMessage,
  type GenerationStore,
  type LockFn,
} from './platform.js';
export * from './passkeys.js';
