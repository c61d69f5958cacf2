# Precompiled LibTorch headers (model/torch_pch.h), built once per build
# directory and reused by every target that links LibTorch, directly or
# through our libraries. A file that includes LibTorch compiles in about 40%
# of the time (README.md has the figures); a file of such a target that does
# not include LibTorch pays the loading of the header, about 1 s.
#
# GCC checks that a precompiled header matches each compile (options and
# the macros it uses) and falls back to the plain header otherwise
# (-Winvalid-pch says so), so a mismatch costs time, never correctness.
option(MMFUSE_TORCH_PCH "Precompile the LibTorch headers once per build" ON)

# Whether `target` links `library`, directly or through the link interfaces
# of our own targets. Sets `${out}`.
function(mmfuse_links_transitively target library out)
  set(pending ${target})
  set(seen "")
  while(pending)
    list(POP_FRONT pending current)
    if(current IN_LIST seen OR NOT TARGET ${current})
      continue()
    endif()
    list(APPEND seen ${current})
    get_target_property(type ${current} TYPE)
    set(links "")
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(direct ${current} LINK_LIBRARIES)
      if(direct)
        list(APPEND links ${direct})
      endif()
    endif()
    get_target_property(interface ${current} INTERFACE_LINK_LIBRARIES)
    if(interface)
      list(APPEND links ${interface})
    endif()
    foreach(link IN LISTS links)
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" link "${link}")
      if(link STREQUAL library)
        set(${out} TRUE PARENT_SCOPE)
        return()
      endif()
      if(TARGET ${link} AND NOT link IN_LIST seen)
        list(APPEND pending ${link})
      endif()
    endforeach()
  endwhile()
  set(${out} FALSE PARENT_SCOPE)
endfunction()

# Every target defined in `dir` and below.
function(mmfuse_targets_under dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir IN LISTS subdirs)
    mmfuse_targets_under(${subdir} below)
    list(APPEND targets ${below})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Call once, after every target is defined.
function(mmfuse_use_torch_pch)
  if(NOT MMFUSE_WITH_TORCH OR NOT MMFUSE_TORCH_PCH)
    return()
  endif()
  add_library(mmfuse_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/model/torch_pch.cc)
  target_link_libraries(mmfuse_torch_pch PUBLIC ${TORCH_LIBRARIES})
  target_include_directories(mmfuse_torch_pch SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
  target_precompile_headers(mmfuse_torch_pch PRIVATE ${PROJECT_SOURCE_DIR}/model/torch_pch.h)
  # -pthread defines _REENTRANT, which GCC requires to match: some targets
  # get it from their dependencies (GoogleTest), so all of them get it.
  target_compile_options(mmfuse_torch_pch PRIVATE -pthread)
  mmfuse_targets_under(${PROJECT_SOURCE_DIR} targets)
  set(count 0)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(NOT type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY)$"
       OR target STREQUAL "mmfuse_torch_pch")
      continue()
    endif()
    mmfuse_links_transitively(${target} mmfuse_model uses_torch)
    if(uses_torch OR target STREQUAL "mmfuse_model")
      target_precompile_headers(${target} REUSE_FROM mmfuse_torch_pch)
      target_compile_options(${target} PRIVATE -pthread -Winvalid-pch)
      math(EXPR count "${count} + 1")
    endif()
  endforeach()
  message(STATUS "mmfuse: precompiled LibTorch headers for ${count} targets")
endfunction()
