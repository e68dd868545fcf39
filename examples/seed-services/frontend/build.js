// Stands in for `vite build` (no npm registry in the tests): index.html -> dist/.
const fs = require('fs');
fs.mkdirSync('dist', { recursive: true });
fs.copyFileSync('index.html', 'dist/index.html');
