// The README's "Use the TypeScript client" example; test/example.test.ts
// runs it against a real server.
import { createParleyClient, openRoomStream, unwrap, type EventSourceConstructor } from "../src/index.js";

export async function quickstart(baseUrl: string, EventSource: EventSourceConstructor, username: string): Promise<string> {
  const parley = createParleyClient({ baseUrl, onSession: (s) => console.log("signed in as", s.user.username) });
  await parley.register({ username, password: "correct horse battery" });

  const room = await unwrap(parley.api.POST("/v1/rooms", { body: { name: "general", visibility: "public" } }));

  // The stream mints its own tickets, resumes with after=, and refreshes
  // the session after reauth.
  const received = new Promise<string>((resolve) => {
    const stream = openRoomStream(parley, room.id, {
      EventSource, // in a browser, leave it out: globalThis.EventSource
      onEvent: (ev) => {
        if (ev.type === "ready") {
          void parley.api.POST("/v1/rooms/{room_id}/messages", {
            params: { path: { room_id: room.id } },
            body: { body: "Hello, room!" },
          });
        } else if (ev.type === "message") {
          stream.close();
          resolve(`${ev.data.author.username}: ${ev.data.body}`);
        }
      },
    });
  });
  return received;
}
