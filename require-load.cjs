// How require.cjs and require-trace.cjs load heaplab's ES modules from CommonJS:
// Node 20.19 and later require ES modules; elsewhere this says so in one line,
// with heaplab's code, instead of ERR_REQUIRE_ESM.
'use strict';
module.exports = function load(path) {
  try {
    return require(path);
  } catch (error) {
    if (error && (error.code === 'ERR_REQUIRE_ESM' || error.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      const e = new Error(`heaplab is an ES module: use import (or Node >= 20.19, which can require it); this is Node ${process.version}`);
      e.code = 'ERR_HEAPLAB_UNSUPPORTED';
      throw e;
    }
    throw error;
  }
};
