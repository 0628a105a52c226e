import { defineConfig } from "vitest/config";

// End-to-end: Debian's Chromium, driven by playwright-core, against a whole
// stack that tests/integration/test_web_app.py starts as `make run` does.
export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 300_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    bail: 1, // the steps build on each other: the first failure is the one to read
  },
});
