% Crops the small test pairs of tests/vifb_octave_a.rs from the TNO and RoadScene images that the
% CDDFuse repository ships under test_img/ (not VIFB's 21 pairs).
% Usage (from the repository root, CDDFuse's test_img/ extracted to data/test_img):
%   octave-cli crates/mmif-classic/tests/data/vifb/gen/make_inputs.m
src = 'data/test_img';
dst = 'crates/mmif-classic/tests/data/vifb/inputs';
% name, ir file, vis file, row, col, height, width, keep colour of vis
pairs = {
  'tno_48x64',   'TNO/ir/01.png',                'TNO/vi/01.png',                200, 300, 48, 64, 0;
  'tno_77x101',  'TNO/ir/05.png',                'TNO/vi/05.png',                150, 200, 77, 101, 0;
  'road_60x90c', 'RoadScene/ir/FLIR_00211.jpg',  'RoadScene/vi/FLIR_00211.jpg',  120, 200, 60, 90, 1;
  'tno_256x200', 'TNO/ir/10.png',                'TNO/vi/10.png',                100, 150, 200, 256, 0;
  'road_224x176c', 'RoadScene/ir/FLIR_00211.jpg', 'RoadScene/vi/FLIR_00211.jpg', 60, 150, 176, 224, 1;
};
only = getenv('PAIRS');
for k = 1:size(pairs, 1)
  [name, fi, fv, r, c, h, w, colour] = pairs{k, :};
  if ~isempty(only) && isempty(strfind(only, name)), continue; end
  ir = imread(fullfile(src, fi));
  vi = imread(fullfile(src, fv));
  ir = ir(r:r+h-1, c:c+w-1, 1);
  if colour
    vi = vi(r:r+h-1, c:c+w-1, :);
  else
    vi = vi(r:r+h-1, c:c+w-1, 1);
  end
  imwrite(ir, fullfile(dst, [name '_ir.png']));
  imwrite(vi, fullfile(dst, [name '_vi.png']));
end
