// require('heaplab') (package.json "exports"): see require-load.cjs.
'use strict';
module.exports = require('./require-load.cjs')('./dist/index.js');
