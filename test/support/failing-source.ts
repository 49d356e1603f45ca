import { Readable } from 'node:stream';

/** A source that dies on its first read, as a dump tool that exits or a connection that drops. */
export function failingSource(message: string): Readable {
  return new Readable({
    read() {
      this.destroy(new Error(message));
    },
  });
}
