// A room hook (docs/protocol/rooms.md §9): tether calls onMessage for every SEND and TO in the
// room, in a sandboxed QuickJS runtime of the room's own. Return the text to deliver, or null to
// drop the message (the sender gets HOOK_REJECTED). Module state lives as long as the room's
// runtime.

const BANNED = [/\bbuy now\b/i, /\bfree money\b/i];
let count = 0;

/** @param {{room: string, from?: string, to?: string, text: string}} msg */
export function onMessage(msg) {
  if (BANNED.some((re) => re.test(msg.text))) return null;
  count += 1;
  const [word, ...rest] = msg.text.split(" ");
  const arg = rest.join(" ");
  switch (word) {
    case "/shout":
      return arg.toUpperCase();
    case "/reverse":
      return [...arg].reverse().join("");
    case "/count":
      return `${msg.from ?? "someone"} asked: message #${count} in ${msg.room}`;
    default:
      return msg.text;
  }
}
