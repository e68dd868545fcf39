// The oracle for change-detect's random comparison: dorny/paths-filter's matching, run here.
//
// picomatch is the npm package at the version dorny/paths-filter bundles (2.3.1, its
// package-lock), loaded from $PICOMATCH_DIR; `isMatch` below is dorny's `Filter.isMatch`
// (src/filter.ts at b41dfa9) verbatim in JavaScript: a rule holds when its statuses allow the
// file's status and picomatch(pattern(s), { dot: true }) matches its name; `some` or `every`.
//
// stdin: [{ quantifier, filters: [{ rules: [{ status: [..] | null, patterns: [..] }] }],
//           files: [{ filename, status }] }]
// stdout: per case, per filter, the indices of the matching files (or { error } when picomatch
// throws while compiling a filter).
'use strict';
const picomatch = require(process.env.PICOMATCH_DIR);
const MatchOptions = { dot: true };

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', chunk => { input += chunk; });
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const out = cases.map(c => c.filters.map(filter => {
    let rules;
    try {
      rules = filter.rules.map(rule => rule.status === null
        ? { status: undefined, isMatch: picomatch(rule.patterns[0], MatchOptions) }
        : { status: rule.status, isMatch: picomatch(rule.patterns, MatchOptions) });
    } catch (error) {
      return { error: String(error.message) };
    }
    const isMatch = file => {
      const aPredicate = rule =>
        (rule.status === undefined || rule.status.includes(file.status)) && rule.isMatch(file.filename);
      return c.quantifier === 'every' ? rules.every(aPredicate) : rules.some(aPredicate);
    };
    return c.files.map((file, index) => isMatch(file) ? index : -1).filter(i => i >= 0);
  }));
  process.stdout.write(JSON.stringify(out));
});
