// The one logger of the project: pino, one JSON object per line on stdout, so that `kubectl logs`
// output can be filtered by `component`, `peer` and `conn`. On a terminal (or with
// `--log-format text`) the same records are rendered for people by pino-pretty.
import { pino, destination as pinoDestination, stdTimeFunctions, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };
export type LogFormat = 'json' | 'text' | 'auto';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  readonly format?: LogFormat;
  /** Where records go; stdout by default. Tests pass their own stream. */
  readonly destination?: NodeJS.WritableStream;
  /** Fields on every record, such as the peer name. */
  readonly base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stdout;
  const human =
    options.format === 'text' ||
    (options.format !== 'json' && destination === process.stdout && process.stdout.isTTY === true);
  const pinoOptions = {
    level: options.level ?? 'info',
    base: options.base ?? {},
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (human) {
    // Synchronous so that nothing is lost when the process exits right after logging.
    return pino(pinoOptions, pretty({ destination, sync: true, colorize: false, translateTime: 'SYS:standard', ignore: 'pid,hostname' }));
  }
  return pino(pinoOptions, destination === process.stdout ? pinoDestination({ fd: 1, sync: true }) : destination);
}

/** A logger that drops everything: for pure cores driven by tests and simulations. */
export const silentLogger: Logger = pino({ level: 'silent' });
