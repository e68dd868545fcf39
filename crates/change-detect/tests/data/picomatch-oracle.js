// Regenerate: npm install picomatch@2.3.1 && node picomatch-oracle.js > picomatch-oracle.json
// Generates the picomatch 2.3.1 {dot: true} oracle table used by change-detect's glob tests.
const pm = require("picomatch");
const corpus = [
  ".env", ".github/workflows/ci.yml", "README.md", "a", "a/b", "a/x/b", "a/x/y/b", "axb", "b.txt", "b1.txt",
  "b2.txt", "b5.txt", "dir/file.less", "dir/file.tsx", "dir/server.py", "docs/a.md", "docs/sub/b.md",
  "file with space.txt", "foo.js", "src/.env", "src/.hidden/h.js", "src/a.js", "src/app/x.js",
  "src/package1", "src/package1/file.txt", "weird[1].txt", "x.JS", "services/api/src/main.rs",
  "services/api/Cargo.toml", "services/worker/src/lib.rs", "crates/shared/src/lib.rs", "frontend/package.json",
  "frontend/src/App.tsx", "frontend/node_modules/.bin/x", "ünïcode/файл.txt", "x.tar.gz", "pkg/y.tar.gz",
  "{a}", "a{}", "b]c", "$(touch pwned)", "it's.md", "-leading-dash", "deep/a/b/c/d/e/f.rs",
];
const patterns = [
  "src/*.js", "*.md", "*", "a?b", "**/*.md", "a/**/b", "**/b", "a/**", "src/**", "src/**/*", "**/*", "**",
  "**/.*", "*/*", "**/*.txt", "src/*", "src/package1", "src/{app,package1}/**", "**/*.{tsx,less}",
  "{src,{docs,dir}}/*", "{src,docs}/**/*.{js,md}", "b{1,}.txt", "b{,1}.txt", "b[12].txt", "b[0-3].txt",
  "b[^1].txt", "weird\\[1\\].txt", "*.JS", "file with space.txt", "**/*.JS", "**b", "src/**.js",
  "src/**.env", "a/**b", "**.js", "**.tar.gz", "./src/**", "././src/**", "!**/*.md", "!!src/**", "!!!src/**",
  "!./src/**", "{a}", "a{}", "*{a}*", "b]c", "b[]]c", "services/*/src/**", "services/**/Cargo.toml",
  "crates/shared/**", "frontend/**", "!frontend/node_modules/**", "**/node_modules/**", "ünïcode/*",
  "**/файл.txt", "$(touch pwned)", "*'s.md", "-*", "deep/**/f.rs", "deep/*/f.rs", "**/a/**", "*/**/*.rs",
  "?", "??", "[a-c]", "*.{js,}", "{,a}b", "{.env,README.md}", "src/{,.hidden/}*.js", ".*", "**/.env",
  "[[:digit:]]*.txt", "b[1.txt",
  // Refused by change-detect with a hint (globset would read them differently):
  "b{1..3}.txt", "b[!1].txt", "dir/+(file|server).*", "!(**/*.tsx|**/*.less)", "src/**/", "/src/**", "",
];
const rows = patterns.map((p) => {
  let m;
  try { m = pm(p, { dot: true }); } catch (e) { return { pattern: p, error: e.message, matches: [] }; }
  return { pattern: p, matches: corpus.filter((f) => m(f)) };
});
process.stdout.write(JSON.stringify({
  generator: "picomatch 2.3.1, picomatch(pattern, { dot: true }), as dorny/paths-filter v4 calls it",
  corpus, rows }, null, 1) + "\n");
