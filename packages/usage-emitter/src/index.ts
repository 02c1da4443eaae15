export { UsageEvents, type IntervalUsage, type PointUsage, type UsageScope, type WindowSummary } from './usage-events.js';
