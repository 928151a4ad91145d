# native/preload/preload.cmake — the LD_PRELOAD libraries, included by CMakeLists.txt.
#
# One libheaplab-NAME.so per built allocator (HEAPLAB_ALLOCATORS), all from
# native/preload/preload.c compiled with -DHL_PRELOAD_ALLOCATOR=hl_allocator_NAME, with the
# allocator's sources compiled into the library (release flags, no sanitizer: it
# runs inside other programs). Plus heaplab-preload-test, the C test of the
# libraries (test/preload/), which is linked against glibc and run under each
# library with LD_PRELOAD by test/preload.test.ts. And heaplab-churn, the churn
# harness `heaplab churn` runs under each library.
#
# Output: next to the addon. cmake-js sets CMAKE_LIBRARY_OUTPUT_DIRECTORY to
# build/Release; a plain cmake build puts them in <build>/Release too, which is
# where lib/preload/preload.ts looks.

if(CMAKE_LIBRARY_OUTPUT_DIRECTORY)
  set(HEAPLAB_PRELOAD_DIR ${CMAKE_LIBRARY_OUTPUT_DIRECTORY})
else()
  set(HEAPLAB_PRELOAD_DIR ${CMAKE_BINARY_DIR}/Release)
endif()

find_package(Threads REQUIRED)

# -fno-builtin*: gcc would otherwise turn "malloc, then memset to zero" inside our
#   calloc into a call to calloc itself (infinite recursion), and assume things
#   about malloc that do not hold while we are malloc.
# -fvisibility=hidden: only the malloc family (HL_EXPORT in preload.c) is
#   exported; the allocator's own symbols cannot clash with the program's.
# -ftls-model=initial-exec: TLS without a call to __tls_get_addr (which allocates).
# -flto (compile and link): a malloc crosses three files (preload.c, ops_NAME.c,
#   the design); link-time inlining makes it one function. Measured +4-6% on the
#   churn harness for tlsf and dlmalloc, liballoc within noise (docs/results.md, 2026-12-03).
set(HEAPLAB_PRELOAD_FLAGS
  -O2 -g -flto
  -fno-builtin -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
  -fvisibility=hidden -ftls-model=initial-exec -fno-semantic-interposition
  ${HEAPLAB_WARN})

# Two libraries per design: libheaplab-NAME.so (the design alone) and
# libheaplab-NAME+cache.so (the same design behind the thread cache layer,
# native/cache/), so that either loads on its own with LD_PRELOAD and a program's
# environment says nothing it did not say before (an environment variable would
# be inherited by every child, and a library per variant is what `which` prints).
set(HEAPLAB_PRELOAD_LIBRARIES "")
foreach(variant IN ITEMS plain cache)
foreach(name IN LISTS HEAPLAB_ALLOCATORS)
  if(variant STREQUAL "cache")
    set(target heaplab_preload_${name}_cache)
    set(output heaplab-${name}+cache)
  else()
    set(target heaplab_preload_${name})
    set(output heaplab-${name})
  endif()
  add_library(${target} SHARED
    native/preload/preload.c native/trace/writer.c native/pages/mmap.c native/debug/debug.c
    native/cache/cache.c native/ops_${name}.c vendor/${name}/${name}.c)
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${output}
    LIBRARY_OUTPUT_DIRECTORY ${HEAPLAB_PRELOAD_DIR}
    C_VISIBILITY_PRESET hidden)
  target_compile_definitions(${target} PRIVATE HL_PRELOAD_ALLOCATOR=hl_allocator_${name})
  if(variant STREQUAL "cache")
    target_compile_definitions(${target} PRIVATE HL_PRELOAD_CACHE=1)
  endif()
  target_compile_options(${target} PRIVATE ${HEAPLAB_PRELOAD_FLAGS})
  # every symbol resolved at link time, bound at load (no lazy PLT resolution,
  # which would run the dynamic linker in the middle of a malloc)
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,-z,now -flto -O2)
  target_link_libraries(${target} PRIVATE Threads::Threads)
  list(APPEND HEAPLAB_PRELOAD_LIBRARIES ${target})
endforeach()
endforeach()

# The C test of the preload libraries: plain glibc program, run under LD_PRELOAD.
if(HEAPLAB_TESTS AND EXISTS ${CMAKE_SOURCE_DIR}/test/preload/preload_test.c)
  add_executable(heaplab-preload-test test/preload/preload_test.c)
  set_target_properties(heaplab-preload-test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${HEAPLAB_PRELOAD_DIR})
  target_compile_options(heaplab-preload-test PRIVATE -O1 -g -fno-builtin ${HEAPLAB_WARN})
  target_link_libraries(heaplab-preload-test PRIVATE Threads::Threads)
endif()

# The churn harness (native/bench/churn.c), a plain glibc program that `heaplab
# churn` runs under each preload library (and a peer's library, and none for
# glibc): built with the libraries, since the command is for users, not tests.
add_executable(heaplab-churn ${CMAKE_SOURCE_DIR}/native/bench/churn.c)
set_target_properties(heaplab-churn PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${HEAPLAB_PRELOAD_DIR})
target_compile_options(heaplab-churn PRIVATE -O2 -g ${HEAPLAB_WARN})
target_link_libraries(heaplab-churn PRIVATE Threads::Threads m ${CMAKE_DL_LIBS})
