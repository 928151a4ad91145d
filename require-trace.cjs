// require('heaplab/trace') (package.json "exports"): see require-load.cjs.
'use strict';
module.exports = require('./require-load.cjs')('./dist/trace/public.js');
