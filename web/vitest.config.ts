import { defineConfig } from "vitest/config";

// Unit tests: the app's pure parts (money, problems, retries), no browser.
export default defineConfig({
  test: { include: ["tests/**/*.test.ts"], environment: "node" },
});
