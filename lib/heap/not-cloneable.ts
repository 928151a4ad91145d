/**
 * A heap object cannot cross threads by structured clone: `postMessage(heap)`
 * would deliver a plain object with none of its methods. So every heap has one
 * enumerable accessor that throws when the clone reads it, with a message that
 * says what to do instead.
 */
import { UnsupportedError } from '../errors.js';

export function refuseCloning(heap: object, instead: string): void {
  Object.defineProperty(heap, 'notCloneable', {
    enumerable: true,
    get(): never {
      throw new UnsupportedError(`a heap cannot be cloned or posted to another thread (it would arrive as a plain object); ${instead}`);
    },
  });
}
