# Runs at `cmake --install` (install(SCRIPT) in CMakeLists.txt), after the files are copied: writes
# the prefix into what must know it. PROBNAS_SOURCE_DIR, PROBNAS_VERSION, PROBNAS_DATADIR and
# PROBNAS_BINDIR are set by the install(CODE) before it; CMAKE_INSTALL_PREFIX is the prefix given to
# cmake --install.
function(probnas_absolute out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
probnas_absolute(probnas_datadir "${PROBNAS_DATADIR}")
probnas_absolute(probnas_bindir "${PROBNAS_BINDIR}")
set(probnas_home "${probnas_datadir}/probnas")
set(probnas_dest "$ENV{DESTDIR}${probnas_home}")

# The Slurm scripts: PROBNAS_INSTALLED_HOME="" becomes the installed share/probnas, so that the
# installed copies find their helpers, configs and binary from any submit folder.
# probnas_fill(FILE VARIABLE VALUE): the line VARIABLE="" of FILE becomes VARIABLE="VALUE".
function(probnas_fill file variable value)
  file(READ "${file}" text)
  string(FIND "${text}" "\n${variable}=\"\"\n" marker)
  if(marker EQUAL -1)
    message(FATAL_ERROR "probnas install: ${file} has no line ${variable}=\"\" to fill in")
  endif()
  string(REPLACE "\n${variable}=\"\"\n" "\n${variable}=\"${value}\"\n" text "${text}")
  file(WRITE "${file}" "${text}")
endfunction()
foreach(script search.sbatch search-multinode.sbatch sample.sbatch drnas-imagenet.sbatch chain.sh)
  set(file "${probnas_dest}/jobs/${script}")
  probnas_fill("${file}" PROBNAS_INSTALLED_HOME "${probnas_home}")
  file(CHMOD "${file}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
       WORLD_EXECUTE)
endforeach()
# The helper: where the installed binary is.
probnas_fill("${probnas_dest}/jobs/probnas-slurm.sh" PROBNAS_INSTALLED_BIN "${probnas_bindir}")

# The Lmod module file: <prefix>/share/modulefiles/probnas/<version>.lua (module use
# <prefix>/share/modulefiles; module load probnas).
set(PROBNAS_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(PROBNAS_HOME "${probnas_home}")
set(PROBNAS_BIN "${probnas_bindir}")
set(module "${probnas_datadir}/modulefiles/probnas/${PROBNAS_VERSION}.lua")
message(STATUS "Installing: $ENV{DESTDIR}${module}")
configure_file("${PROBNAS_SOURCE_DIR}/packaging/lmod/probnas.lua.in" "$ENV{DESTDIR}${module}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${module}")
