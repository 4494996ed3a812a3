// The software version. Kept in code (not read from package.json at run time) so that bundled
// executables know it too; a test checks that it matches package.json.
export const VERSION = '0.1.0';
