# Install rules: headers, libraries and a cohortConfig.cmake so that find_package(cohort CONFIG) works.
include(CMakePackageConfigHelpers)

install(TARGETS cohort cohort_runtime cohort_executors cohort_actors EXPORT cohortTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cohort ${PROJECT_SOURCE_DIR}/runtime/include/cohort
                  ${PROJECT_SOURCE_DIR}/executors/include/cohort ${PROJECT_SOURCE_DIR}/actors/include/cohort
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT cohortTargets NAMESPACE cohort:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cohort)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cohortConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cohortConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cohort)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cohortConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cohortConfig.cmake ${PROJECT_BINARY_DIR}/cohortConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/CohortDependencies.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cohort)
