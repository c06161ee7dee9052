// Typeset TeX with MathJax 3 (the renderer JupyterLab uses) and report what fails.
// stdin: JSON [[tex, display], ...]; stdout: JSON [[index, message], ...] for each failure.
// Undefined macros are errors here (JupyterLab would draw them in red), so the
// noundefined package is left out.
const {mathjax} = require('mathjax-full/js/mathjax.js');
const {TeX} = require('mathjax-full/js/input/tex.js');
const {SVG} = require('mathjax-full/js/output/svg.js');
const {liteAdaptor} = require('mathjax-full/js/adaptors/liteAdaptor.js');
const {RegisterHTMLHandler} = require('mathjax-full/js/handlers/html.js');
const {AllPackages} = require('mathjax-full/js/input/tex/AllPackages.js');

RegisterHTMLHandler(liteAdaptor());
const packages = AllPackages.filter((p) => p !== 'noundefined' && p !== 'autoload' && p !== 'require');
const tex = new TeX({packages, formatError: (jax, err) => { throw err; }});
const doc = mathjax.document('', {InputJax: tex, OutputJax: new SVG({fontCache: 'none'})});

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const failures = [];
  JSON.parse(input).forEach(([formula, display], i) => {
    try {
      doc.convert(formula, {display});
    } catch (err) {
      failures.push([i, err.message]);
    }
  });
  process.stdout.write(JSON.stringify(failures));
});
