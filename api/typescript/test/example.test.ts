import { test } from "node:test";
import assert from "node:assert/strict";
import { quickstart } from "../examples/quickstart.js";
import { NodeEventSource, serverURL, uniqueName } from "./helpers.js";

test("the README's example runs", async () => {
  const name = uniqueName("readme");
  assert.equal(await quickstart(serverURL(), NodeEventSource, name), `${name}: Hello, room!`);
});
