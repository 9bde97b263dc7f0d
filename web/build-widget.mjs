// Writes build/rasa-webchat.js: the rasa-webchat bundle without its Google
// Fonts @import, so that the chat page requests nothing from outside the
// machine (the font comes from @fontsource/inter, linked by index.html).
//
// rasa-webchat 1.0.1 injects its CSS at run time, and every stylesheet starts
// with `@import url(https://fonts.googleapis.com/...)`; the widget has no
// option to turn that off. Runs as npm's postinstall; it fails, rather than
// writing a bundle that still reaches out, when the widget changes shape.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const here = new URL(".", import.meta.url);
const source = new URL("node_modules/rasa-webchat/lib/index.js", here);
const target = new URL("build/rasa-webchat.js", here);
const FONT_IMPORT = /@import url\(https:\/\/fonts\.googleapis\.com\/css\?[^)]*\);/g;

const bundle = readFileSync(source, "utf8");
const found = bundle.match(FONT_IMPORT) ?? [];
if (found.length === 0) {
  throw new Error(
    `${source.pathname}: no Google Fonts @import found; has rasa-webchat changed? ` +
      "Check the chat page for external requests (tests/browser/test_widget.py) " +
      "and update web/build-widget.mjs."
  );
}
const stripped = bundle.replace(FONT_IMPORT, "");
const left = stripped.match(/@import\s+url\(\s*["']?(https?:)?\/\//);
if (left) {
  throw new Error(`${source.pathname}: an @import from another host is left: ${left[0]}`);
}
mkdirSync(new URL("build/", here), { recursive: true });
writeFileSync(target, stripped);
console.log(`build-widget: ${target.pathname} (${found.length} font @imports removed)`);
