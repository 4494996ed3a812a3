// Makes protobufjs decode 64-bit integers as plain numbers instead of Long objects. It must run
// before the generated code is evaluated (the generated classes capture their field defaults at
// load time), which is why it is a module of its own that src/proto.ts imports first.
import protobuf from 'protobufjs/minimal.js';

// protobufjs picks Long up when the package is installed; without it, it uses numbers.
(protobuf.util as { Long: unknown }).Long = undefined; // the typings do not allow unsetting it
protobuf.configure();
