# prometheus-cpp::core and prometheus-cpp::pull for arm64 (see
# cmake/aarch64-linux-gnu.cmake): the shared libraries of
# libprometheus-cpp-core1.0:arm64 and libprometheus-cpp-pull1.0:arm64 (which
# bring civetweb's arm64 libraries) and the headers of the amd64
# prometheus-cpp-dev, the same on every architecture.
set(_esb_prometheus_lib /usr/lib/aarch64-linux-gnu)
foreach(_esb_part core pull)
  set(_esb_file ${_esb_prometheus_lib}/libprometheus-cpp-${_esb_part}.so.1.0)
  if(NOT EXISTS ${_esb_file})
    set(prometheus-cpp_FOUND FALSE)
    set(prometheus-cpp_NOT_FOUND_MESSAGE "${_esb_file} is missing: install "
        "libprometheus-cpp-${_esb_part}1.0:arm64 (scripts/cross_arm64.sh)")
    return()
  endif()
  if(NOT TARGET prometheus-cpp::${_esb_part})
    add_library(prometheus-cpp::${_esb_part} SHARED IMPORTED)
    set_target_properties(prometheus-cpp::${_esb_part} PROPERTIES
      IMPORTED_LOCATION ${_esb_file}
      IMPORTED_SONAME libprometheus-cpp-${_esb_part}.so.1.0
      INTERFACE_INCLUDE_DIRECTORIES /usr/include)
  endif()
endforeach()
if(NOT EXISTS /usr/include/prometheus/registry.h)
  set(prometheus-cpp_FOUND FALSE)
  set(prometheus-cpp_NOT_FOUND_MESSAGE
      "/usr/include/prometheus is missing: install prometheus-cpp-dev")
  return()
endif()
set_target_properties(prometheus-cpp::pull PROPERTIES
  INTERFACE_LINK_LIBRARIES prometheus-cpp::core)
set(prometheus-cpp_FOUND TRUE)
