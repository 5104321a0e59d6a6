# The nbdkit plugin: built when nbdkit's plugin header is found (Debian:
# nbdkit-plugin-dev) unless VMDKIT_NBDKIT is turned off.
option(VMDKIT_NBDKIT "Build the nbdkit plugin when nbdkit-plugin-dev is installed" ON)

set(VMDKIT_HAVE_NBDKIT OFF)
if(VMDKIT_NBDKIT)
  pkg_check_modules(NBDKIT IMPORTED_TARGET nbdkit)
  if(NBDKIT_FOUND)
    set(VMDKIT_HAVE_NBDKIT ON)
  else()
    message(STATUS "nbdkit-plugin-dev not found: the nbdkit plugin is not built")
  endif()
endif()

if(VMDKIT_HAVE_NBDKIT)
  add_library(nbdkit-vmdkit-plugin MODULE src/nbdkit/vmdkit-plugin.c)
  set_target_properties(nbdkit-vmdkit-plugin PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
  # the plugin speaks to the library through vmdkit.h only (vmdkit_static
  # carries include/ and nothing of src/lib)
  target_link_libraries(nbdkit-vmdkit-plugin PRIVATE vmdkit_static PkgConfig::NBDKIT)
  target_compile_definitions(nbdkit-vmdkit-plugin PRIVATE VMDKIT_VERSION="${PROJECT_VERSION}")
  # keep the library's symbols inside the plugin: nbdkit looks up plugin_init only
  target_link_options(nbdkit-vmdkit-plugin PRIVATE -Wl,--exclude-libs,ALL)

  # Where nbdkit looks for plugins by name.  Under prefix /usr that is
  # nbdkit's own plugindir; any other prefix gets the same layout below it,
  # so an install into a fresh prefix stays inside that prefix.
  # -DVMDKIT_NBDKIT_PLUGINDIR=DIR overrides (relative to the prefix, or absolute).
  if(NOT DEFINED VMDKIT_NBDKIT_PLUGINDIR)
    set(VMDKIT_NBDKIT_PLUGINDIR "${CMAKE_INSTALL_LIBDIR}/nbdkit/plugins")
    if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
      pkg_get_variable(_nbdkit_plugindir nbdkit plugindir)
      if(_nbdkit_plugindir MATCHES "^/usr/(.+)$")
        set(VMDKIT_NBDKIT_PLUGINDIR "${CMAKE_MATCH_1}")
      endif()
    endif()
  endif()
  install(TARGETS nbdkit-vmdkit-plugin LIBRARY DESTINATION "${VMDKIT_NBDKIT_PLUGINDIR}")
endif()
