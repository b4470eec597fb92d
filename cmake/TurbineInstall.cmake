# TurbineInstall.cmake — `cmake --install` and the exported package.
#
# Installs the libraries, their public headers, the generated protocol headers and the
# .proto files, turbined and the turbine CLI, the Python client package, and a CMake
# package so that
#
#   find_package(turbine CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE turbine::server)
#
# works with CMAKE_PREFIX_PATH pointing at the install prefix. Tests, benchmarks and
# examples install nothing. Kept in one file, away from the targets' own CMakeLists, so
# adding sources or targets there does not touch the install rules.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(turbine_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/turbine)

# The targets are turbine_backend etc. (with turbine:: aliases in the build); exported
# under the same turbine:: names. (turbine::tls only because the client and the server,
# static libraries, link it.)
set(turbine_exported_targets
  turbine_backend turbine_storage turbine_proto turbine_server turbine_stdlib turbine_client
  turbine_render turbine_tls)
foreach(target IN LISTS turbine_exported_targets)
  string(REPLACE "turbine_" "" export_name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
endforeach()

# turbine::stdlib is an OBJECT library (its objects only register functions; an archive
# would let the linker drop them), so it installs object files, which a consumer's
# executable links in whole. Link it into the final executable only: linked into two
# libraries of one program, its functions would register twice and abort at start-up.
install(TARGETS ${turbine_exported_targets}
  EXPORT turbine-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  OBJECTS DESTINATION ${CMAKE_INSTALL_LIBDIR}/turbine/objects)
install(TARGETS turbined turbine RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

foreach(component backend storage server client render tls)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${component}/include/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()
# The protocol: its generated C++ headers (export.h and the client include them) and the
# .proto file itself, for generating stubs in other languages against the installed copy.
set(turbine_generated_dir ${PROJECT_BINARY_DIR}/proto/generated)
install(FILES
  ${turbine_generated_dir}/turbine/v1/turbine.pb.h
  ${turbine_generated_dir}/turbine/v1/turbine.grpc.pb.h
  ${PROJECT_SOURCE_DIR}/proto/turbine/v1/turbine.proto
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/turbine/v1)

# The Python client (pure Python) goes where Debian keeps python3 packages, relative to the
# prefix: on /usr/bin/python3's path for the prefix /usr; for any other prefix, users add
# PREFIX/lib/python3/dist-packages to PYTHONPATH.
set(TURBINE_PYTHON_INSTALL_DIR lib/python3/dist-packages CACHE STRING
    "Where the turbine_client Python package is installed, relative to the prefix")
install(DIRECTORY ${PROJECT_BINARY_DIR}/client/python/turbine_client
        DESTINATION ${TURBINE_PYTHON_INSTALL_DIR}
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)

install(EXPORT turbine-targets
  NAMESPACE turbine::
  FILE turbine-targets.cmake
  DESTINATION ${turbine_cmake_dir})
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/turbine-config.cmake.in
  ${PROJECT_BINARY_DIR}/turbine-config.cmake
  INSTALL_DESTINATION ${turbine_cmake_dir})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/turbine-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/turbine-config.cmake
  ${PROJECT_BINARY_DIR}/turbine-config-version.cmake
  DESTINATION ${turbine_cmake_dir})
