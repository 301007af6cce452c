# ccache with the sloppiness precompiled headers need; CI's second build is then mostly hits.
find_program(PROBNAS_CCACHE ccache)
if(PROBNAS_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      ${PROBNAS_CCACHE})
  message(STATUS "probnas: compiling through ccache (${PROBNAS_CCACHE})")
endif()
