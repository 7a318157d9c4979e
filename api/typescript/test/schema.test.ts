import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// dist/test/ -> the package folder.
const pkg = fileURLToPath(new URL("../../", import.meta.url));

test("src/schema.d.ts is what openapi.yaml generates (make openapi)", () => {
  const out = join(mkdtempSync(join(tmpdir(), "parley-ts-")), "schema.d.ts");
  execFileSync(join(pkg, "node_modules", ".bin", "openapi-typescript"), [join(pkg, "..", "..", "openapi.yaml"), "-o", out], {
    cwd: pkg,
    stdio: "pipe",
  });
  const want = readFileSync(out, "utf8");
  const got = readFileSync(join(pkg, "src", "schema.d.ts"), "utf8");
  assert.ok(got === want, "api/typescript/src/schema.d.ts is stale: run make openapi");
});
