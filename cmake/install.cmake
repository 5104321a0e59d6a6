# What `cmake --install` puts in place: the command (linked with the static
# library, so it needs no libvmdkit.so at run time), both libraries, the
# header, vmdkit.pc, man pages and the bash completion.

install(TARGETS vmdkit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS vmdkit_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS vmdkit_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/vmdkit.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# vmdkit.pc names the prefix it is installed into, which `cmake --install
# --prefix DIR` may change after configuring: the directories are filled in
# now, the prefix when installing.
foreach(d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
    set(PC_${d} "${CMAKE_INSTALL_${d}}")
  else()
    set(PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
  endif()
endforeach()
set(PC_PREFIX "@PC_PREFIX@") # kept for the install-time pass
set(VMDKIT_PC_TEMPLATE "${PROJECT_BINARY_DIR}/vmdkit.pc.template")
set(VMDKIT_PC_OUT "${PROJECT_BINARY_DIR}/vmdkit.pc")
configure_file(cmake/vmdkit.pc.in "${VMDKIT_PC_TEMPLATE}" @ONLY)
install(CODE "set(PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
configure_file(\"${VMDKIT_PC_TEMPLATE}\" \"${VMDKIT_PC_OUT}\" @ONLY)")
install(FILES "${VMDKIT_PC_OUT}" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES completions/vmdkit
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# Man pages.  vmdkit(1), nbdkit-vmdkit-plugin(1) and libvmdkit(3) are
# written as roff in docs/man; the page of each command is generated from
# the manual built into the command (`vmdkit help COMMAND`), so a new
# command gets its page without further work.
file(GLOB VMDKIT_MAN1 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.1)
file(GLOB VMDKIT_MAN3 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.3)
set(VMDKIT_MAN_GEN_DIR "${PROJECT_BINARY_DIR}/man")
add_custom_command(
  OUTPUT "${VMDKIT_MAN_GEN_DIR}/.stamp"
  COMMAND bash "${PROJECT_SOURCE_DIR}/docs/man/command-pages.sh"
          "$<TARGET_FILE:vmdkit>" "${VMDKIT_MAN_GEN_DIR}" "${PROJECT_VERSION}"
  COMMAND ${CMAKE_COMMAND} -E touch "${VMDKIT_MAN_GEN_DIR}/.stamp"
  DEPENDS vmdkit "${PROJECT_SOURCE_DIR}/docs/man/command-pages.sh"
  COMMENT "Generating the man pages of the vmdkit commands"
  VERBATIM)
add_custom_target(vmdkit_man ALL DEPENDS "${VMDKIT_MAN_GEN_DIR}/.stamp")
install(FILES ${VMDKIT_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${VMDKIT_MAN3} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
install(DIRECTORY "${VMDKIT_MAN_GEN_DIR}/" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
        FILES_MATCHING PATTERN "*.1")
