# Runs at `cmake --install` (install(SCRIPT) in CMakeLists.txt), after the files are copied: writes
# the prefix into what must know it. PROBNAS_SOURCE_DIR, PROBNAS_VERSION and PROBNAS_DATADIR are
# set by the install(CODE) before it; CMAKE_INSTALL_PREFIX is the prefix given to cmake --install.
set(probnas_home "${CMAKE_INSTALL_PREFIX}/${PROBNAS_DATADIR}/probnas")
if(IS_ABSOLUTE "${PROBNAS_DATADIR}")
  set(probnas_home "${PROBNAS_DATADIR}/probnas")
endif()
set(probnas_dest "$ENV{DESTDIR}${probnas_home}")

# The Slurm scripts: PROBNAS_INSTALLED_HOME="" becomes the installed share/probnas, so that the
# installed copies find their helpers, configs and binary from any submit folder.
foreach(script search.sbatch search-multinode.sbatch sample.sbatch drnas-imagenet.sbatch chain.sh)
  set(file "${probnas_dest}/jobs/${script}")
  file(READ "${file}" text)
  string(FIND "${text}" "\nPROBNAS_INSTALLED_HOME=\"\"\n" marker)
  if(marker EQUAL -1)
    message(FATAL_ERROR "probnas install: ${file} has no line PROBNAS_INSTALLED_HOME=\"\" to fill in")
  endif()
  string(REPLACE "\nPROBNAS_INSTALLED_HOME=\"\"\n" "\nPROBNAS_INSTALLED_HOME=\"${probnas_home}\"\n" text "${text}")
  file(WRITE "${file}" "${text}")
  file(CHMOD "${file}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
       WORLD_EXECUTE)
endforeach()

# The Lmod module file: <prefix>/share/modulefiles/probnas/<version>.lua (module use
# <prefix>/share/modulefiles; module load probnas).
set(PROBNAS_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(PROBNAS_HOME "${probnas_home}")
set(module "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${PROBNAS_DATADIR}/modulefiles/probnas/${PROBNAS_VERSION}.lua")
message(STATUS "Installing: ${module}")
configure_file("${PROBNAS_SOURCE_DIR}/packaging/lmod/probnas.lua.in" "${module}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${module}")
