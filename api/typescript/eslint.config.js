// ESLint flat config (ESLint and typescript-eslint pinned in
// package-lock.json). The rule that matters: no `any`, anywhere.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
);
