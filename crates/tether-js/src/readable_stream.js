// A minimal ReadableStream (pull-based, default reader, async iteration) for tether-js.
// Compiled once per process and evaluated by a runtime only when JS first touches
// `ReadableStream` (most runtimes never do, and this is the largest part of the shims).
(function () {
  'use strict';
  class ReadableStream {
    #queue = [];
    #waiting = [];
    #state = 'readable';
    #error = undefined;
    #source;
    #pulling = false;
    #locked = false;
    #controller;
    constructor(source = {}) {
      this.#source = source;
      const self = this;
      this.#controller = {
        enqueue(chunk) {
          if (self.#state !== 'readable') throw new TypeError('Stream is closed');
          const w = self.#waiting.shift();
          if (w) w.resolve({ value: chunk, done: false });
          else self.#queue.push(chunk);
        },
        close() {
          if (self.#state !== 'readable') return;
          self.#state = 'closed';
          if (self.#queue.length === 0) self.#flush();
        },
        error(e) {
          if (self.#state !== 'readable') return;
          self.#state = 'errored';
          self.#error = e;
          self.#queue = [];
          self.#flush();
        },
        get desiredSize() {
          return 1 - self.#queue.length;
        },
      };
      if (typeof source.start === 'function') {
        Promise.resolve(source.start(this.#controller)).catch((e) => this.#controller.error(e));
      }
    }
    #flush() {
      for (const w of this.#waiting.splice(0)) {
        if (this.#state === 'errored') w.reject(this.#error);
        else w.resolve({ value: undefined, done: true });
      }
    }
    #pull() {
      if (this.#pulling || this.#state !== 'readable' || typeof this.#source.pull !== 'function') {
        return;
      }
      this.#pulling = true;
      Promise.resolve()
        .then(() => this.#source.pull(this.#controller))
        .then(
          () => {
            this.#pulling = false;
            if (this.#waiting.length > 0) this.#pull();
          },
          (e) => {
            this.#pulling = false;
            this.#controller.error(e);
          },
        );
    }
    #read() {
      if (this.#queue.length > 0) {
        const value = this.#queue.shift();
        if (this.#state === 'closed' && this.#queue.length === 0) this.#flush();
        return Promise.resolve({ value, done: false });
      }
      if (this.#state === 'closed') return Promise.resolve({ value: undefined, done: true });
      if (this.#state === 'errored') return Promise.reject(this.#error);
      const p = new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
      this.#pull();
      return p;
    }
    #cancel(reason) {
      if (this.#state !== 'readable') return Promise.resolve();
      this.#state = 'closed';
      this.#queue = [];
      this.#flush();
      const c = this.#source.cancel;
      return Promise.resolve(typeof c === 'function' ? c.call(this.#source, reason) : undefined)
        .then(() => undefined);
    }
    get locked() {
      return this.#locked;
    }
    cancel(reason) {
      if (this.#locked) return Promise.reject(new TypeError('ReadableStream is locked'));
      return this.#cancel(reason);
    }
    getReader() {
      if (this.#locked) throw new TypeError('ReadableStream is locked');
      this.#locked = true;
      const stream = this;
      let released = false;
      return {
        read() {
          if (released) return Promise.reject(new TypeError('Reader was released'));
          return stream.#read();
        },
        cancel(reason) {
          return stream.#cancel(reason);
        },
        releaseLock() {
          released = true;
          stream.#locked = false;
        },
        get closed() {
          return new Promise((resolve, reject) => {
            if (stream.#state === 'errored') reject(stream.#error);
            else resolve(undefined);
          });
        },
      };
    }
    async *[Symbol.asyncIterator]() {
      const reader = this.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        reader.releaseLock();
      }
    }
    values() {
      return this[Symbol.asyncIterator]();
    }
  }
  return ReadableStream;
});
