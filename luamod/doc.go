// Package luamod is the home of the pure-Lua library modules wirecat adds to
// gopher-lua, one Go package per module: pack (string.pack, string.unpack,
// string.packsize), bit and json. README.md documents them; its examples
// are run by this package's tests.
package luamod
