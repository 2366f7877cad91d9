# The zcu102 board backend: bitstreams through the Linux FPGA Manager, the
# accelerator through UIO, power from the INA226 monitors through hwmon.
# Included from fpga_agent/CMakeLists.txt.
add_library(esb_zcu102 STATIC
  ${CMAKE_CURRENT_LIST_DIR}/fpga_manager.cc
  ${CMAKE_CURRENT_LIST_DIR}/hwmon.cc
  ${CMAKE_CURRENT_LIST_DIR}/sysfs.cc
  ${CMAKE_CURRENT_LIST_DIR}/uio.cc
  ${CMAKE_CURRENT_LIST_DIR}/zcu102_backend.cc
  ${CMAKE_CURRENT_LIST_DIR}/zcu102_device.cc
)
target_link_libraries(esb_zcu102 PUBLIC esb_accel esb_package esb_env
  absl::status absl::statusor absl::strings absl::str_format
  absl::synchronization absl::time Threads::Threads)

# The device emulator the tests run the backend against: a fake sysfs and
# dev tree in a directory, an FPGA Manager and an accelerator on a thread.
add_library(esb_zcu102_testing STATIC
  ${CMAKE_CURRENT_LIST_DIR}/emulator.cc
)
target_link_libraries(esb_zcu102_testing PUBLIC esb_zcu102 esb_accel esb_env
  absl::status absl::statusor absl::strings absl::synchronization absl::time
  Threads::Threads)

add_executable(esb_zcu102_test
  ${CMAKE_CURRENT_LIST_DIR}/emulator_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/fpga_manager_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/hwmon_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/uio_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/zcu102_backend_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/zcu102_device_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/zcu102_serving_test.cc
)
target_link_libraries(esb_zcu102_test PRIVATE esb_zcu102 esb_zcu102_testing
  esb_runtime esb_demo_testing GTest::gtest_main GTest::gmock)
target_compile_definitions(esb_zcu102_test PRIVATE
  ESB_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(esb_zcu102_test DISCOVERY_TIMEOUT 60)
