/**
 * What a command may say and how it may colour it. The interfaces live here, on the ground
 * floor, so every floor can take them; ui/ is the only implementation.
 */
export interface Theme {
  success: (s: string) => string;
  error: (s: string) => string;
  warn: (s: string) => string;
  dim: (s: string) => string;
  bold: (s: string) => string;
  code: (s: string) => string;
  path: (s: string) => string;
  ref: (s: string) => string;
}

export interface Progress {
  update(doneBytes: number): void;
  stop(): void;
}

export interface Output {
  readonly json: boolean;
  readonly theme: Theme;
  /** writes a command's result: a rendered text, or one JSON document under --json. */
  result(text: string): void;
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
  /** a byte progress bar on an interactive stderr; silent otherwise. */
  progress(label: string, totalBytes: number): Progress;
  /** a spinner naming the step under way, on an interactive stderr; silent otherwise. */
  step(label: string): Progress;
}
