// The translation unit that builds model/torch_pch.h's precompiled header
// (cmake/torch_pch.cmake); it defines nothing.
