export {
  RESERVE_SCOPE,
  ReservationClient,
  type Reservation,
  type ReservationCallOptions,
  type ReservationStatus,
  type ReserveInput,
} from './reservation-client.js';
